-- 025_ingest_sql_functions_cached.sql -- the SQL functions of the ingest path
-- keep their plans (issue 8, speed).
--
-- A LANGUAGE sql function that cannot be inlined (one that aggregates over
-- a set, or writes) is parsed, analysed and planned again on every call in
-- PostgreSQL 15. In PL/pgSQL the same statement is planned once per
-- connection. Same bodies, same results:
--   ef_ingest_first_positions  once a batch (ef_ingest);
--   ef_queue_outbound          once a reply on the per-event path (a chat's
--                              second message in a batch, edits, buttons);
--   ef_chat_sessions           once a batch whose sessions Redis did not
--                              have.
-- callgrind (tests/bench/ingest_cost.py, 16 messages of 16 known chats):
-- ef_ingest_first_positions cost 937,000 instructions a call, 560,000 of
-- them parsing and planning: 7 % of the batch, about a fifth of a
-- one-message batch.
CREATE OR REPLACE FUNCTION ef_ingest_first_positions(batch jsonb) RETURNS int[]
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN (
        SELECT coalesce(array_agg(i ORDER BY i), '{}')
          FROM (SELECT i, e,
                       row_number() OVER (PARTITION BY coalesce(e->>'integration_id', '-'),
                                                       coalesce(e->>'platform', ''),
                                                       coalesce(e->>'chat_id', '')
                                          ORDER BY i) AS nth
                  FROM jsonb_array_elements(batch) WITH ORDINALITY AS t(e, i)) x
         WHERE nth = 1 AND e->>'kind' IN ('new', 'callback')
           AND e->>'integration_id' IS NOT NULL AND e->>'platform' IS NOT NULL
           AND e->>'chat_id' IS NOT NULL AND e->>'message_id' IS NOT NULL
           AND e->'sender'->>'id' IS NOT NULL);
END $$;

CREATE OR REPLACE FUNCTION ef_queue_outbound(c conversations, p_content text, p_role message_role,
                                             p_meta jsonb) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO messages (conversation_id, session_id, user_id, integration_id, content, role,
                          direction, platform, metadata, delivery_status, next_attempt_at,
                          created_at)
    VALUES (c.id, c.session_id, c.user_id, c.integration_id, p_content, p_role, 'outbound',
            c.platform, p_meta, 'queued', now(), clock_timestamp());
END $$;

-- The look-ups are equality probes of the chat's unique key: a generic
-- plan is the plan (024).
CREATE OR REPLACE FUNCTION ef_chat_sessions(p_chats jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET plan_cache_mode = force_generic_plan AS $$
BEGIN
    RETURN (
        SELECT coalesce(jsonb_object_agg(k->>'i', ef_session_json(x.c)), '{}'::jsonb)
          FROM jsonb_array_elements(p_chats) k
         CROSS JOIN LATERAL (SELECT c FROM conversations c
                              WHERE c.integration_id = (k->>'g')::uuid AND c.platform = k->>'p'
                                AND c.chat_id = k->>'c' AND c.status <> 'closed' LIMIT 1) x);
END $$;
