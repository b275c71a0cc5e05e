-- 016_operator_audit.sql -- the audit trail of operator accounts changed
-- from the command line (issue 11): `easyflow operator add EMAIL
-- --reset-password` replaces an existing account's password, revokes its
-- sessions and records who did it, what and when.
--
-- conversation_events (007) audits conversations and needs one;
-- data_erasures (008) audits customers. An account's password reset is
-- neither, so it gets its own small table, read by auditors.

CREATE TABLE operator_audit (
    id BIGSERIAL PRIMARY KEY,
    operator_id UUID REFERENCES users(id) ON DELETE SET NULL,
    email VARCHAR(255) NOT NULL,           -- the account's e-mail at the time
    action VARCHAR(32) NOT NULL,           -- password_reset
    actor TEXT NOT NULL,                   -- who: "cli user=<login> uid=<n>"
    details JSONB NOT NULL DEFAULT '{}',   -- e.g. revoked_tokens, role before/after
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT clock_timestamp()
);
-- No index: a few rows a year, read by auditors.

-- Replaces the password (and name, role) of the operator or admin with
-- this e-mail, revokes every refresh token of the account (its access
-- tokens expire within minutes) and writes one operator_audit row, in one
-- transaction. An e-mail with no account creates it (nothing to audit).
-- {"result": "reset", "id", "revoked"} | {"result": "created", "id"} |
-- {"result": "customer"} (the e-mail is a customer's: nothing changed).
CREATE FUNCTION ef_operator_reset_password(p_email text, p_name text, p_role text, p_hash text,
                                           p_actor text) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
    u users;
    v_revoked int;
BEGIN
    INSERT INTO users (email, name, role, password_hash)
    VALUES (lower(p_email), p_name, p_role::user_role, p_hash)
    ON CONFLICT (email) DO NOTHING
    RETURNING * INTO u;
    IF FOUND THEN
        RETURN jsonb_build_object('result', 'created', 'id', u.id);
    END IF;
    SELECT * INTO u FROM users WHERE email = lower(p_email) FOR UPDATE;
    IF u.role = 'customer' THEN
        RETURN jsonb_build_object('result', 'customer');
    END IF;
    UPDATE users SET name = p_name, role = p_role::user_role, password_hash = p_hash,
                     updated_at = now()
     WHERE id = u.id;
    UPDATE refresh_tokens
       SET revoked = true, revoked_at = now(), revoked_reason = 'password_reset'
     WHERE user_id = u.id AND NOT revoked;
    GET DIAGNOSTICS v_revoked = ROW_COUNT;
    INSERT INTO operator_audit (operator_id, email, action, actor, details)
    VALUES (u.id, u.email, 'password_reset', p_actor,
            jsonb_build_object('revoked_tokens', v_revoked, 'role_before', u.role,
                               'role_after', p_role, 'name_changed', u.name IS DISTINCT FROM p_name));
    RETURN jsonb_build_object('result', 'reset', 'id', u.id, 'revoked', v_revoked);
END $$;
