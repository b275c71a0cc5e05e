-- 014_integration_sealed_for_id.sql -- a configuration-sourced integration
-- is written only with credentials sealed for its own id (issue 11).
--
-- Credentials are sealed with the integration's id as associated data, so
-- the gateway must know a row's id before it seals. 004's upsert of the
-- default created the id itself and overwrote an existing row's blob with
-- one sealed for another id; the caller re-sealed it in a second statement,
-- and in between every other gateway, woken by the NOTIFY, found a blob
-- that does not open and marked the integration 'error' (e2e
-- 13-robust-outbox, two gateways starting on one database).
--
-- Now the caller names the id it sealed for (p_id). When the platform's
-- default already exists under another id nothing is written and
-- o_applied is false: the caller seals for o_id and calls again. NULL p_id
-- (no EF_SECRET_KEY, nothing sealed) applies to whichever row exists.

DROP FUNCTION ef_integration_upsert_default(text, text, text, jsonb, text, bytea, text);

CREATE FUNCTION ef_integration_upsert_default(p_platform text, p_name text, p_external text,
                                              p_settings jsonb, p_source text, p_sealed bytea,
                                              p_key_id text, p_id uuid,
                                              OUT o_id uuid, OUT o_created boolean,
                                              OUT o_applied boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_old_external text;
BEGIN
    o_applied := true;
    LOOP
        SELECT id, external_id INTO o_id, v_old_external FROM integrations
         WHERE platform_id = p_platform AND is_default
         FOR UPDATE;
        IF FOUND THEN
            o_created := false;
            IF p_id IS NOT NULL AND p_id <> o_id THEN
                o_applied := false;
                RETURN;
            END IF;
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
            RETURN;
        END IF;
        INSERT INTO integrations (id, platform_id, name, external_id, settings, source,
                                  credentials_encrypted, encryption_key_id, is_default)
        VALUES (coalesce(p_id, gen_random_uuid()), p_platform, p_name, p_external,
                coalesce(p_settings, '{}'::jsonb), p_source, p_sealed, p_key_id, true)
        ON CONFLICT (platform_id) WHERE is_default DO NOTHING
        RETURNING id INTO o_id;
        IF FOUND THEN
            EXIT;
        END IF;
        -- Lost the race to another starting gateway: look again.
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
